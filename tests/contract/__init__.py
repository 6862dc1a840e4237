"""Consumer-driven contracts between the services (Pact), consumer and provider side."""
