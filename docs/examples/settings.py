"""Production settings, as docs/deployment.rst and docs/flood.rst show them.

Load them with ``app.config.from_pyfile("settings.py")``. The secrets come from
the environment (filled from your secret store), never from this file.
tests/test_doc_examples.py starts the example application with them.
"""

import os

# [database]
SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://app:secret@db.internal/app"
# MariaDB: "mysql+pymysql://app:secret@db.internal/app"
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
# [/database]

# [rate limits]
RATELIMIT_STORAGE_URI = "redis://redis.internal:6379/0"
RATELIMIT_KEY_PREFIX = "myapp:"  # when several applications share the Redis
# [/rate limits]

# [signing key]
JWT_AUTH_SECRET_KEY = os.environ["JWT_AUTH_SECRET_KEY"]  # 64 random characters
# [/signing key]

# [key encryption key]
JWT_AUTH_KEY_ENCRYPTION_KEY = os.environ["JWT_AUTH_KEY_ENCRYPTION_KEY"]  # Fernet
# [/key encryption key]
