"""Which page may frame the app, per platform."""

from plugin.helpdesks import is_allowed_origin
from plugin.models import Installation

SERVICE = "http://127.0.0.1:5000"


def test_demo_is_framed_by_the_service_itself() -> None:
    demo = Installation(platform="demo", account="demo")
    assert is_allowed_origin(demo, SERVICE, service_origin=SERVICE)
    assert not is_allowed_origin(demo, "https://evil.example", service_origin=SERVICE)


def test_zendesk_is_framed_by_its_own_subdomain_only() -> None:
    acme = Installation(platform="zendesk", account="acme")
    assert is_allowed_origin(acme, "https://acme.zendesk.com", service_origin=SERVICE)
    assert not is_allowed_origin(acme, "https://other.zendesk.com", service_origin=SERVICE)
    assert not is_allowed_origin(acme, "http://acme.zendesk.com", service_origin=SERVICE)
    assert not is_allowed_origin(acme, SERVICE, service_origin=SERVICE)
