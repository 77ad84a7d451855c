"""Fusebill: the HTTP client and its whole-request deadlines, what an answer means
(classifier, rate-limit headers), redaction of the key, and the service seam the rest uses."""
