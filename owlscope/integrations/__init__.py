"""Where a project's data goes besides the UI: scheduled exports to blob storage (`exports`),
streamed downloads of a table (`downloads`) and prompt webhooks (`webhooks`)."""
