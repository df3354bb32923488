"""Azure Functions entry points (v2 programming model): bindings in, one call into ``shared`` out."""

import azure.functions as func

from shared.entrypoints import on_jobs_message, on_sweep_timer

app = func.FunctionApp()


@app.function_name("poll_job")
@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def poll_job(msg: func.QueueMessage) -> None:
    """Poll one Language job; archive it when it has ended, else schedule the next poll."""
    await on_jobs_message(
        msg.get_body(), dequeue_count=msg.dequeue_count or 1, enqueued_at=msg.insertion_time
    )


@app.function_name("sweep_ledger")
@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def sweep_ledger(timer: func.TimerRequest) -> None:
    """Re-drive every pending job whose next poll is overdue; clean up archived ones."""
    await on_sweep_timer(past_due=timer.past_due)
