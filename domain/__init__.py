"""The seed scenarios as plain domain classes (model), their mappers (mappers) and a demo (`python -m domain`)."""
