"""Training dynamics recorded elsewhere: import (long table, dataset cartography), export, the recorder."""
