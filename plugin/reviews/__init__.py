"""Account reviews: checklist templates, and the review of each ticket that calls for one."""
