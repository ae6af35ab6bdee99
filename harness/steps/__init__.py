"""Steps: actions and checks run against a built network, in file order."""
