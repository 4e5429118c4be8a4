"""Where an activity lands: the embedded testbed or staging on Google Cloud. The one seam
that actions and probes call to start a fresh instance, flood the database, and read
how loaded the connector and the database are (`chaoskit.targets`)."""
