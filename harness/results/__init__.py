"""Run results: records, the environment they were measured in, and the JSON file."""
