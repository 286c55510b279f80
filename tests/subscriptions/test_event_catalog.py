def test_event_catalog_is_public_json_array(client, db):
    response = client.get("/api/events/")
    assert response.status_code == 200
    names = [event["name"] for event in response.json()]
    assert "request.create" in names and "operator.select" in names
