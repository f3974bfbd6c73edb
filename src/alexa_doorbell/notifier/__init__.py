"""The notifier: events toward Alexa for the camera side (DoorbellPress, ChangeReport...).

- ``tokens``: each linked user's LWA tokens, refreshed when due (relink detection)
- ``state_report``: the events, sent to the users who see the device, and the sweep
- ``lambda_handler``: its AWS Lambda entry point (the camera side invokes it)
- ``client``: the one ``Notifier`` protocol the camera side uses, in-process or Lambda

Standard library, boto3 and urllib3 only: it runs in Lambda beside the skill.
"""
