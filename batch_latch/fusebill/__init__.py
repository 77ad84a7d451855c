"""Fusebill: the tool's one HTTP transport (sessions, whole-request deadlines, proxies and CA
bundles from the environment, one reading of network failures; the webhook uses it too),
the client on top, what an answer means (classifier, rate-limit headers), redaction of the
key and the proxies' credentials, and the service seam the rest uses."""
