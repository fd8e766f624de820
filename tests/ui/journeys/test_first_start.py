"""A person's first start: the demo hub opens and a module's twin can be read."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_first_start_shows_the_demo_hub_and_a_module_twin(person, qrun):
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)  # expand, as with the keyboard
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        await person.wait_to_see('"deviceId": "myFirstDevice"')
        assert person.sees("myFirstModule")

    qrun(journey())
