"""The connection flood, one subject in one folder: `dispatch` (where a flood lands: a
worker process on this machine, or a Cloud Run Job on staging), `worker` (the local
worker's connections), `cloud_run_job` (the job, its execution and its ramps read back from
Cloud Logging) and `cloud_run_task` (one task of the job, in the image
deploy/flood-job/Dockerfile builds). The activities are `chaoskit.actions.flood`."""
