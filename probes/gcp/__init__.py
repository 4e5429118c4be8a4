"""Observations of the staging environment on Google Cloud: Cloud Monitoring metrics of
the connector and Cloud SQL, and startups read from Cloud Logging."""
