"""The dead-letter handler: forensics, classification, fingerprints, routing."""
