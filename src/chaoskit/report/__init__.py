"""From journals alone to a review: analysis, charts, HTML, Markdown and JSON
(`chaoskit.report`)."""
