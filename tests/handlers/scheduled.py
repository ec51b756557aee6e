"""Seed-style functions on schedules, for the tests of served schedules."""

import perdure as durable


@durable.function(schedule="rate(5 minutes)")
def every_five(ctx, event):
    return {"time": event["time"]}


@durable.function(schedule="cron(0 9 * * ? *)", schedule_timezone="Europe/Berlin", schedule_input={"report": "daily"})
def daily(ctx, event):
    return event
