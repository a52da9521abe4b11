"""Patrol check-ins at smart patrol points: points file, badges, check-ins, overdue alarms.

    points.py   configs/patrol_points.yaml (points, teams, roster, badge secret), checked with lines
    badge.py    signed ArUco badges: make, render, read
    checkin.py  PatrolMonitor: per camera, tracked people in check-in areas -> check-in events
    overdue.py  OverdueWatch: points not visited in time -> patrol_overdue, retained status
    store.py    the last check-ins on disk, so due times survive a restart
"""
