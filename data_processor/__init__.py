"""Documents -> fact-based, role-diversified QA pairs (arXiv 2404.00213), stage by stage."""
