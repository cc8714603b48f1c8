# Read by the flask command (python-dotenv): `flask ...` finds the app from the repository root.
FLASK_APP=plugin
