"""Reports over the action log and account reviews, for supervisors."""
