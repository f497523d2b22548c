"""WeChat Official Account datacube pipeline for Apache Airflow 3.3.

Import the pieces from their modules (``wechat_datacube.hook``, ``.operators``, ...):
this package init stays empty so that importing the registry does not drag in Airflow.
"""

__version__ = "0.1.0"
