from django.shortcuts import render

from search.api.serializers import TextSearchInputSerializer
from search.embeddings import ModelLoadError
from search.forms import search_request_from
from search.services.query import SearchError, Term, products_search
from shop.selectors import category_list


def search_view(request):
    context = {
        "categories": category_list(),
        "q": request.GET.get("q", ""),
        "params": request.GET,
    }
    status = 200
    if "q" in request.GET:
        form = TextSearchInputSerializer(data=request.GET)
        if not form.is_valid():
            context["errors"] = form.errors
            status = 400
        else:
            data = form.validated_data
            try:
                context["result"] = products_search(
                    search_request_from(data, [Term(kind="text", text=data["q"])])
                )
            except (SearchError, ModelLoadError) as exc:
                context["error"] = str(exc)
                status = getattr(exc, "status", 503)
    return render(request, "search/search.html", context, status=status)
