"""The long-running process: scheduler jobs and the HTTP API on one asyncio loop."""
