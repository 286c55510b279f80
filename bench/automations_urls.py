"""The product's URLs plus `/bench/plain`: a plain Django view answering the JSON the benchmark's
flow answers, so the two differ only in the automation machinery."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tiledesk_hooks.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def plain(request):
    return JsonResponse({"hello": "Ann", "n": 3})


urlpatterns = [path("bench/plain", plain), *product_urlpatterns]
