import sys

from qa_audio.cli import main

sys.exit(main())
