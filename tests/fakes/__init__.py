"""Tests of the fakes that stand in for helpdesks in end-to-end tests and benchmarks."""
