"""Data checks over the metadata tables: expectation suites evaluated with great-expectations,
before de-identification (the incoming files) and after it (the output against its input)."""
