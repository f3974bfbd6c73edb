"""Clients of Amazon services: Login with Amazon and the Alexa event gateway."""
