"""The local cloud: KVS, Login with Amazon and event-gateway emulators, and a
simulated Echo Show."""
