"""Kinesis Video Streams: control/data-plane calls, presigned URLs, signaling connections."""
