"""`make bench`: the local sandbox measured against the floor of the machine it runs on.

Every figure is set beside one measured in the same run (raw DynamoDB Local writes, raw
PutEvents round trips, the same services written the workshop's way), because these machines
are shared and absolute times drift from one run to the next.
"""
