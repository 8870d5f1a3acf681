import os
import signal
import sys

# Ctrl-C while the command line is still importing (nothing written yet): one line and exit 130, as once it
# runs (adac.common.errors.exit_code_for_user_errors then installs the handler that also removes temp files)
signal.signal(signal.SIGINT, lambda signum, frame: (os.write(2, b"adac: error: interrupted (Ctrl-C)\n"), os._exit(130)))

from .build.cli import main  # noqa: E402

sys.exit(main())
