"""The Allure report: the results read back, their categories, the run records, the safety scan, generation."""
