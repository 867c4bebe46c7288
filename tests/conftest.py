pytest_plugins = [
    "tests.plugins.database",
    "tests.plugins.simulator",
    "tests.plugins.s3",
    "tests.plugins.receiver",
    "tests.plugins.service",
    "tests.plugins.processes",
    "tests.plugins.drills",
]
