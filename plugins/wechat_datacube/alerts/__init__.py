"""Alerts: what the pipeline reports (:mod:`.events`) and how it reaches a WeCom group robot.

* :mod:`.events` — the event contract (plain, JSON-serialisable, secret-free data);
* :mod:`.render` — events to WeCom markdown (one event, or a digest of several), packed
  into messages of at most 4096 bytes;
* :mod:`.wecom` — :class:`~.wecom.WeComRobotHook`, the one place that calls a robot;
* :mod:`.delivery` — the delivery loop: the robot's 20-a-minute window, coalescing, and
  what becomes of an event when the robot refuses or is down;
* :mod:`.outbox` (Postgres, shared by every worker) and :mod:`.local_outbox` (this
  process) — where events wait for the robot;
* :mod:`.notifier` — :class:`~.notifier.WeComRobotNotifier` (an Airflow notifier) and
  :func:`~.notifier.send_events`.

Nothing is imported here: a DAG file that names the notifier imports :mod:`.notifier`
only, and that module keeps its imports light.
"""
