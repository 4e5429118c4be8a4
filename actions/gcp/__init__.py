"""Perturbations of the staging environment on Google Cloud: Serverless VPC Access,
Cloud SQL, Cloud Run, and the connection flood spread over a Cloud Run Job."""
