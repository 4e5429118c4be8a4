"""Google Cloud, as the kit reaches it: clients, Cloud Run rollouts and jobs, Cloud
Logging and Cloud Monitoring."""
