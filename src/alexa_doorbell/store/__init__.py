"""Token, device and session stores: one interface, SQLite and DynamoDB."""
