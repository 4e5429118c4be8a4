"""The embedded system under test: PostgreSQL, the reference service, and their control."""
