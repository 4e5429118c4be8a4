"""The Serverless VPC Access connector model: a real TCP proxy in front of PostgreSQL.

The proxy composes small limits, as Toxiproxy composes toxics: `Instances` (how many,
between min and max), `Capacity` (connections per instance; overflow waits or is
refused), `RateLimit` (connections per minute), `Throughput` (bytes per second in each
direction, the instances' share), `Latency` (per chunk) and the `Autoscaler` (scale
out after a delay, cooldown between events, never in). Clients pass through unchanged.
"""
