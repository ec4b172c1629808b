"""From passages to a cited answer: gate, generation, citation checks, fallbacks."""
