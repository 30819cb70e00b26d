"""CI integration: the pytest plugin, JUnit XML and GitHub step summaries, over one verdict line."""
