"""Tag de-identification: the file's identifying values, free-text cleaning, the tag engine and
the batch runner that writes outputs, mappings, audit and quarantine."""
