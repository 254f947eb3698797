"""The records a new data file starts with, as the seeds show them."""

from __future__ import annotations

from typing import Any


def customers() -> list[dict[str, Any]]:
    return [
        {
            "id": "e20a1b70-67c9-4fb4-9f6d-56ba97a87c14",
            "name": "John Doe",
            "email": "john.doe@example.com",
            "phone": "+1-555-0101",
            "address": "123 Main St, New York, NY 10001",
            "company": "Tech Corp",
            "status": "active",
            "created_at": "2026-02-01T10:00:00.000000",
            "updated_at": "2026-02-01T10:00:00.000000",
        },
        {
            "id": "5f0c6a2e-8d41-4b7a-9c3e-2a1d7e6b9f40",
            "name": "Jane Smith",
            "email": "jane.smith@example.com",
            "phone": "+1-555-0102",
            "address": "456 Market St, San Francisco, CA 94105",
            "company": "Global Logistics",
            "status": "active",
            "created_at": "2026-02-01T10:05:00.000000",
            "updated_at": "2026-02-01T10:05:00.000000",
        },
    ]


def profiles() -> list[dict[str, Any]]:
    people = [
        ("John", "Doe", "john.doe@example.com", "+1-555-0101", "123 Main St, New York, NY 10001", "1985-03-15"),
        ("Jane", "Smith", "jane.smith@example.com", "+1-555-0102", "456 Oak Ave, Los Angeles, CA 90001", "1990-07-22"),
        ("Bob", "Johnson", "bob.johnson@example.com", "+1-555-0103", "789 Pine Rd, Chicago, IL 60601", "1978-11-30"),
    ]
    return [
        {
            "id": number,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone_number": phone,
            "address": address,
            "date_of_birth": born,
            "created_at": "2026-02-01T10:00:00.000000",
            "updated_at": "2026-02-01T10:00:00.000000",
        }
        for number, (first, last, email, phone, address, born) in enumerate(people, start=1)
    ]
