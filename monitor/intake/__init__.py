"""How data comes in: shipments the merchant tells us of, and the carriers' scans.

* ``shipments``: a shipment's fields, checked (``Shipment.parse``), and the book that adds them
  with their deadlines, once each (a repeated import adds nothing).
* ``importing``: a CSV or XLSX export of the shop's orders read into shipments, every bad row
  named with its line and field.
* ``ingest``: carrier events folded into each parcel's state and deadlines, in batches of a
  handful of statements whatever their size.
"""
