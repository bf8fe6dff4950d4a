"""A compact list of common given names, for finding person names in columns declared free text.

About 500 names across English, Spanish, Portuguese, French, German, Italian, Dutch, Nordic, Slavic,
Greek, Turkish, Arabic, Persian, Indian, Chinese, Japanese, Korean, Vietnamese and African usage. Names that
are also everyday English words at the start of a sentence (May, June, Will, Mark, Grace, Hope, Bill, Rose,
...) are left out on purpose: a missed name costs less here than a flood of false alarms.
"""

from __future__ import annotations

_NAMES = """
Aaron Abdul Abdullah Abigail Adam Adriana Adrian Agnieszka Ahmad Ahmed Aiden Aisha Akira Alan Albert Alberto
Aleksandr Alejandro Alessandro Alex Alexander Alexandra Alexis Alfredo Ali Alice Alicia Alina Alison Allison
Alvaro Amanda Amelia Amir Amit Amy Ana Anastasia Andrea Andreas Andrei Andrew Andrzej Angela Angelo Anil Anita
Anja Ann Anna Anne Annette Anthony Antoine Antonio Anya Arjun Arnaud Arthur Ashley Astrid Aurora Ava Ayesha
Barbara Beatriz Ben Benjamin Bernard Bianca Björn Brandon Brenda Brian Bruno Caitlin Camila Camille Carl Carla
Carlos Carmen Carol Caroline Catherine Cecilia Charles Charlotte Chen Chloe Christian Christina Christine
Christopher Claire Clara Claudia Colin Connor Craig Cristina Cynthia Dae Daniel Daniela Daniele Danielle David
Deborah Deepak Denise Dennis Diana Diego Dimitri Dmitri Dmitry Dominik Donald Dorothy Douglas Duc Dylan Edward
Elena Eleni Elif Elijah Elizabeth Ella Ellen Emily Emine Emma Emmanuel Enrique Eric Erik Erin Esther Ethan
Eduardo Elias Eva Evelyn Fabian Fatima Federico Felipe Felix Fernando Filip Finn Florian Francesca Francesco
Francisco François Frank Franz Frederick Gabriel Gabriela Gary George Georgios Gerald Gianluca Giorgio
Giovanni Giulia Giuseppe Gloria Gregory Guillaume Gustavo Hamza Hana Hannah Hans Haruto Hassan Heather Heinrich
Helen Helena Henrik Henry Hiroshi Hugo Hussein Ian Ibrahim Igor Ilya Ines Ingrid Irina Isaac Isabel Isabella
Ivan Jack Jacob Jacqueline Jakub James Jan Jana Jane Janet Janice Jason Javier Jean Jennifer Jeremy Jessica
Jiho Jin Joan Joanna Joao João Joe Johan Johann Johanna John Jonas Jonathan Jordan Jorge José Joseph Joshua
Joyce Juan Judith Julia Julian Julie Julien Jun Justin Kai Kamal Karen Karim Karin Karl Katarzyna Kate
Katherine Kathleen Kathryn Katie Keith Kelly Kenji Kenneth Kevin Khalid Kim Kimberly Klaus Kofi Kristina Kwame
Larry Lars Laura Lauren Laurent Leila Lena Leo Leon Leonardo Li Liam Lily Linda Lisa Liu Lorenzo Louis Louise
Luca Lucas Lucia Luis Luisa Lukas Luke Maciej Madison Magdalena Mahmoud Malik Manuel Marco Marcus Margaret
Maria Mariam Marie Marina Mario Marion Marta Martha Martin Mary Mateo Matteo Matthew Matthias Maximilian Maya
Mehmet Mei Melissa Mia Michael Michel Michelle Miguel Mikhail Min Ming Minh Mohamed Mohammad Mohammed Monica
Mustafa Nadia Nancy Naomi Natalia Natasha Nathan Nicholas Nicola Nicolas Nicole Nikita Nikolai Nina Noah
Nora Nuno Oksana Olga Oliver Olivia Omar Oscar Pablo Pamela Paolo Patricia Patrick Paul Paula Pedro Per
Peter Philip Philippe Pierre Piotr Pooja Priya Rachel Rafael Rahul Raj Rajesh Ramón Raquel Raymond Rebecca
Ricardo Richard Robert Roberto Rodrigo Roger Roman Ronald Rosa Ruth Ryan Saanvi Sahil Samantha Samir Samuel
Sandra Sara Sarah Sean Sebastian Sergei Sergey Sergio Shirley Simon Simone Sofia Sophia Sophie Stefan Stefano
Stephanie Stephen Steven Sunil Susan Svetlana Takashi Tamara Tanvir Tatiana Teresa Thomas Timothy Tobias Tomasz
Tyler Ulrich Valentina Vanessa Vera Victor Victoria Vikram Vincent Virginia Vivek Wang Wei Wendy William
Wojciech Xavier Xin Yan Yasmin Yiannis Ying Yuki Yusuf Yuri Zainab Zeynep Zhang Zoe Zoë
"""

FIRST_NAMES: frozenset[str] = frozenset(_NAMES.split())
