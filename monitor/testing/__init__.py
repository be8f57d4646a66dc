"""Local fakes of the alert receivers (and an SMTP recorder), built on ``carriers.testing.server``."""
