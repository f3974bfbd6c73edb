"""The skill Lambda (directive -> response) and the notifier entry point."""
