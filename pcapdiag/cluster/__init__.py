"""--cluster: the analysis as tasks of a Dask cluster, for captures that outgrow one machine.

The unit of work is one capture, or one merged group of rotated files (--merge: one task, the
files in order), or, when there are fewer captures than workers, one share of a capture's
flows (by 4-tuple, as --jobs shares them: accel/shard.py). Each task runs the same stages as
one process (session.analyze_shard) where the data is: the worker fetches its own capture
(io/remote.py). The parts come back to this process, which adds them up in the order of the
captures (session.merge_shards for the shares of one capture, session.combine_groups across
captures), so that the report is the one a local run makes, byte for byte.

A task that fails (a capture that cannot be read, a worker that died) costs its capture only:
the report says which capture failed on which worker and why, and is marked partial.
"""

from pcapdiag.cluster.address import ClusterError, ClusterSpec, parse_cluster
from pcapdiag.cluster.run import ClusterTally, run_on_cluster

__all__ = ["ClusterError", "ClusterSpec", "ClusterTally", "parse_cluster", "run_on_cluster"]
