"""Articles: reading and validating them, adding them to the store, cutting them into passages."""
