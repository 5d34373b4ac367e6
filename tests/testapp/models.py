from django.db import models


class Effect(models.Model):
    """A business side effect keyed by its business id (an email sent, a card charged).

    The unique key makes a duplicate effect an error instead of a silent double.
    """

    key = models.CharField(max_length=200, unique=True)
    job_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
